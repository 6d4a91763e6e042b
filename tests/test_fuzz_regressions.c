/* Replays every committed fuzz input through the fuzz targets' entry points, so the
 * seed corpora (tests/fuzz/corpus/<target>/) and every past finding
 * (tests/fuzz/regressions/<target>/) run in the normal and sanitizer builds.
 *
 * Besides "no crash, no sanitizer report, no broken invariant" (the entry points
 * abort on those), file names carry expectations:
 *   ok-*   the target's whole chain must accept the input;
 *   bad-*  some stage must refuse it, with a message;
 * and tests/fuzz/expected.tsv lists "target <TAB> file <TAB> text" lines: the refusal
 * message of that input must contain that text (docs/RELIABILITY.md quotes them).
 * LPL_FUZZ_PRINT=1 prints every input's outcome and message. */
#define LPL_FUZZ_REPLAY 1
#include <dirent.h>

#include "check.h"
#include "fuzz/fuzz_adapter.c"
#include "fuzz/fuzz_alpaca.c"
#include "fuzz/fuzz_experiment.c"
#include "fuzz/fuzz_gguf.c"
#include "fuzz/fuzz_hf_config.c"
#include "fuzz/fuzz_hf_convert.c"
#include "fuzz/fuzz_safetensors.c"
#include "fuzz/fuzz_tokenizer.c"
#include "fuzz/fuzz_tokenizer_json.c"
#include "fuzz/fuzz_torch_zip.c"
#include "fuzz/fuzz_vocab.c"

typedef int (*fuzz_entry)(const uint8_t *, size_t, lpl_error *);

static const struct {
    const char *name;
    fuzz_entry fn;
} targets[] = {
    {"adapter", lpl_fuzz_adapter},         {"alpaca", lpl_fuzz_alpaca},
    {"experiment", lpl_fuzz_experiment},   {"gguf", lpl_fuzz_gguf},
    {"hf_config", lpl_fuzz_hf_config},     {"hf_convert", lpl_fuzz_hf_convert},
    {"safetensors", lpl_fuzz_safetensors}, {"tokenizer", lpl_fuzz_tokenizer},
    {"torch_zip", lpl_fuzz_torch_zip},     {"vocab", lpl_fuzz_vocab},
    {"tokenizer_json", lpl_fuzz_tokenizer_json},
};
#define N_TARGETS ((int)(sizeof targets / sizeof targets[0]))

/* Outcome of one replayed file, kept for the expected.tsv check. */
typedef struct {
    char target[32];
    char file[128];
    int accepted;
    char msg[512];
} outcome;

static outcome *outcomes;
static int n_outcomes, cap_outcomes;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the regular files in dir (none if it does not exist). */
static int list_dir(const char *dir, char ***names)
{
    DIR *d = opendir(dir);
    int n = 0, cap = 0;
    *names = NULL;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            *names = realloc(*names, (size_t)cap * sizeof **names);
        }
        (*names)[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(*names, (size_t)n, sizeof **names, cmp_str);
    return n;
}

static void replay_file(int t, const char *dir, const char *file, int print)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    size_t n = 0;
    char *data = fuzz_read_file(path, &n);
    CHECK(data != NULL, "cannot read %s", path);
    if (!data)
        return;
    /* An exact-size copy, so ASan sees reads past the input's end. */
    uint8_t *exact = malloc(n ? n : 1);
    memcpy(exact, data, n);
    free(data);
    lpl_error err;
    lpl_error_clear(&err);
    int accepted = targets[t].fn(exact, n, &err);
    free(exact);
    if (print) {
        printf("%s/%s: %s", targets[t].name, file, accepted ? "accepted" : "refused: ");
        for (const char *c = accepted ? "" : err.msg; *c; c++)
            fputs(*c == '\n' ? "\\n" : (char[2]){*c, 0}, stdout);
        putchar('\n');
    }
    if (!strncmp(file, "ok-", 3))
        CHECK(accepted, "%s: expected to be accepted, refused: %s", path, err.msg);
    if (!strncmp(file, "bad-", 4)) {
        CHECK(!accepted, "%s: expected to be refused, accepted", path);
        CHECK(accepted || err.msg[0], "%s: refused without a message", path);
    }
    if (n_outcomes == cap_outcomes) {
        cap_outcomes = cap_outcomes ? 2 * cap_outcomes : 256;
        outcomes = realloc(outcomes, (size_t)cap_outcomes * sizeof *outcomes);
    }
    outcome *o = &outcomes[n_outcomes++];
    snprintf(o->target, sizeof o->target, "%s", targets[t].name);
    snprintf(o->file, sizeof o->file, "%s", file);
    o->accepted = accepted;
    snprintf(o->msg, sizeof o->msg, "%s", accepted ? "" : err.msg);
}

/* Replays corpus and regressions of target t; returns the number of files. */
static int replay_target(int t, int print)
{
    static const char *const kinds[2] = {"corpus", "regressions"};
    int total = 0;
    for (int k = 0; k < 2; k++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/tests/fuzz/%s/%s", fuzz_root(), kinds[k], targets[t].name);
        char **names;
        int n = list_dir(dir, &names);
        if (k == 0)
            CHECK(n > 0, "no seed corpus in %s", dir);
        for (int i = 0; i < n; i++) {
            replay_file(t, dir, names[i], print);
            free(names[i]);
        }
        free(names);
        total += n;
    }
    return total;
}

/* Every expected.tsv line must name a replayed, refused file whose message contains
 * the expected text. */
static void check_expectations(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fuzz/expected.tsv", fuzz_root());
    size_t n = 0;
    char *text = fuzz_read_file(path, &n);
    CHECK(text != NULL, "cannot read %s", path);
    if (!text)
        return;
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || !line[0])
            continue;
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        CHECK(t2 != NULL, "expected.tsv: malformed line \"%s\"", line);
        if (!t2)
            continue;
        *t1 = *t2 = '\0';
        const char *target = line, *file = t1 + 1, *want = t2 + 1;
        const outcome *o = NULL;
        for (int i = 0; i < n_outcomes && !o; i++)
            if (!strcmp(outcomes[i].target, target) && !strcmp(outcomes[i].file, file))
                o = &outcomes[i];
        CHECK(o != NULL, "expected.tsv: %s/%s was not replayed", target, file);
        if (o)
            CHECK(!o->accepted && strstr(o->msg, want) != NULL,
                  "%s/%s: message \"%s\" does not contain \"%s\"", target, file, o->msg, want);
        lines++;
    }
    printf("expected.tsv: %d messages checked\n", lines);
    free(text);
}

int main(void)
{
    const char *pe = getenv("LPL_FUZZ_PRINT");
    int print = pe && *pe && strcmp(pe, "0");
    for (int t = 0; t < N_TARGETS; t++) {
        int n = replay_target(t, print);
        printf("%s: %d inputs replayed\n", targets[t].name, n);
    }
    check_expectations();
    free(outcomes);
    return check_report("test_fuzz_regressions");
}
