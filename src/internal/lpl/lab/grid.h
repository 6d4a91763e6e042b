/* Grids of independent training runs (issue 15). An experiment's placements, its
 * lists of r and alpha values and its layer bands multiply into arms (one placement
 * each, with its own layers, r and alpha); arms times seeds are units, each one
 * training run that can go to any machine. A plan fixes the units' order and ids so
 * that `ablate --unit K` on a cluster node and `collect` agree on what unit K is. */
#ifndef LPL_GRID_H
#define LPL_GRID_H

#include "lpl/lab/experiment.h"

/* Number of arms c gives: placements x max(bands, 1) x r values x alpha values. */
int lpl_grid_n_arms(const lpl_experiment_config *c);

/* 1 if c has a grid dimension beyond its placements (several r or alpha values, or
 * bands >= 2), 0 otherwise. */
int lpl_grid_has_dims(const lpl_experiment_config *c);

/* Expands c into flat: one placement per arm, in the fixed order placement, band,
 * r, alpha (the last varies fastest), each named after what varies
 * ("baseline.L0-3.r8.a16") and carrying its own layers, r and alpha; flat has no
 * grid dimensions left. Bands split the placement's layers (its list, or all
 * n_layer layers) into contiguous runs of nearly equal length. Without grid
 * dimensions flat is a copy of c. LPL_ERR_INVALID when there are more arms than
 * LPL_EXP_MAX_PLACEMENTS or fewer layers than bands. flat may not alias c. */
lpl_status lpl_grid_expand(const lpl_experiment_config *c, int n_layer, lpl_experiment_config *flat,
                           lpl_error *err);

/* One unit of a flat config: arm (placement index) and seed. */
typedef struct {
    int index;          /* position in the plan, 0-based (the Slurm array task id) */
    int arm;            /* placement index in the flat config */
    int seed_index;     /* 0-based position of the seed */
    uint64_t seed;
    char name[96];      /* arm name + ".s" + seed, e.g. "baseline.r8.s43" */
    char id[17];        /* 16 hex digits of the SHA-256 of the unit's definition */
} lpl_grid_unit;

/* Number of units of a flat config: placements x seeds. */
int lpl_grid_n_units(const lpl_experiment_config *flat);

/* Unit k of a flat config, in the order a run in one process trains them (seed-major:
 * every arm with the first seed, then every arm with the next), so unit k is training
 * k of lpl_run. Its id hashes everything that
 * decides the unit's numbers (hyper-parameters, data counts, the arm's placement, r,
 * alpha, the seed) and files (the model and data sha256, or NULL), but not file
 * paths, so the same unit keeps its id in another grid or on another machine.
 * LPL_ERR_INVALID when k is out of range. */
lpl_status lpl_grid_unit_get(const lpl_experiment_config *flat, int k, const char *files, lpl_grid_unit *u,
                             lpl_error *err);

#endif
