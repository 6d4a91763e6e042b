/* A grid's plan (DIR/plan.json) and the merge of its units' results (issue 15).
 *
 * plan.json fixes what a grid is before anything trains: the expanded experiment
 * (one placement per arm, seeds), the units in the order a run in one process trains
 * them, each with its id, and the sha256 of the model and data files. A unit runs in
 * DIR/units/<id>/ and leaves a results.json in which its own training is done (the
 * others of the grid appear as pending). Collecting takes each unit's training from
 * its document, in plan order, and recomputes the aggregates, so that the merged
 * document carries the same numbers as the grid run in one process. */
#ifndef LPL_PLAN_H
#define LPL_PLAN_H

#include "lpl/lab/experiment.h"
#include "lpl/lab/grid.h"

typedef struct {
    lpl_experiment_config config;     /* expanded (flat); model/train/eval paths absolute */
    char model_sha256[65];
    int64_t model_bytes;
    char train_sha256[65];
    char eval_sha256[65];             /* "" when the eval set is split from the train file */
    int n_units;
} lpl_plan;

/* Unit k of the plan (lpl_grid_unit_get with the plan's model and data sha256 in the
 * id). LPL_ERR_INVALID when k is out of range. */
lpl_status lpl_plan_unit(const lpl_plan *p, int k, lpl_grid_unit *u, lpl_error *err);

/* plan.json text of p (malloc'd). grid is the experiment as given (before expansion),
 * recorded for people; units are listed with index, id, name, placement and seed.
 * NULL with err set when a unit cannot be described. */
char *lpl_plan_to_json(const lpl_plan *p, const lpl_experiment_config *grid, lpl_error *err);

/* Reads plan.json text into p and checks that the units it lists are the ones its
 * config gives (same count, order and ids), so a plan edited by hand or written by
 * another version of loralab is refused. LPL_ERR_FORMAT / LPL_ERR_INVALID say what
 * is wrong. */
lpl_status lpl_plan_parse(const char *json, lpl_plan *p, lpl_error *err);

/* Where unit k stands, as collect sees it. */
typedef enum {
    LPL_UNIT_MISSING = 0,    /* no result (never ran, or interrupted) */
    LPL_UNIT_DONE = 1,
    LPL_UNIT_FAILED = 2      /* ran and failed (e.g. diverged): a result, reported as such */
} lpl_unit_state;

/* The state of unit u given the text of its results.json (NULL if there is none):
 * done or failed when the document's training u->index is that unit (same name and
 * seed) with status "done" / "failed". A document that is not JSON, or whose training
 * is another unit's, gives LPL_ERR_FORMAT naming what is wrong (the unit counts as
 * missing). */
lpl_status lpl_unit_state_of(const lpl_grid_unit *u, const char *results_json, lpl_unit_state *state,
                             lpl_error *err);

/* Counts of a merge. */
typedef struct {
    int n_units, n_done, n_failed, n_missing;
} lpl_collect_report;

/* Merges the units' results.json texts (docs[k] for unit k, NULL when missing) into
 * one results document: the first present document is the frame (config, model,
 * data, schedule), "trainings" takes training k from docs[k] (a pending entry where
 * the unit is missing), wall time is the sum over units and peak memory the largest,
 * "collected" records the counts, and the aggregates are recomputed
 * (lpl_results_aggregate). Returns malloc'd JSON text, or NULL with err set when no
 * unit has a result or a document is malformed. */
char *lpl_plan_collect(const lpl_plan *p, const char *const *docs, lpl_collect_report *rep, lpl_error *err);

#endif
