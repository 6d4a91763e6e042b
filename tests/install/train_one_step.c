/* A program outside the project: built against the installed library alone
 * (pkg-config lpl), it loads a GGUF model and Alpaca data, trains one step of one
 * placement and prints the step event. tests/cli_install.sh builds and runs it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lpl/io/data.h>
#include <lpl/io/gguf.h>
#include <lpl/io/model_io.h>
#include <lpl/io/tokenizer.h>
#include <lpl/lab/experiment.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: train_one_step MODEL.gguf TRAIN.json\n");
        return 2;
    }
    lpl_error err;
    lpl_error_clear(&err);
    lpl_alpaca_set train = {0};
    lpl_gguf *g = lpl_gguf_open(argv[1], &err);
    lpl_gpt2_model *model = g ? lpl_gpt2_from_gguf(g, 0, &err) : NULL;
    lpl_tokenizer *tok = model ? lpl_tokenizer_from_gguf(g, &err) : NULL;
    lpl_run *run = NULL;
    int code = 1, steps = 0;
    if (!tok || lpl_alpaca_load(argv[2], &train, &err))
        goto done;
    lpl_experiment_config c;
    lpl_experiment_default(&c);
    c.n_train = 2;
    c.n_eval = 1;
    c.max_len = 32;
    c.max_steps = 1;
    c.n_placements = 1; /* the first of the study's: baseline */
    c.eval[0] = '\0';   /* eval records split from the training file */
    if (!(run = lpl_run_new(&c, model, tok, &train, NULL, NULL, &err)))
        goto done;
    int rc;
    while ((rc = lpl_run_step(run, &err)) >= 0) {
        char *events = lpl_run_take_events(run);
        for (const char *e = events; e && (e = strstr(e, "{\"type\":\"step\"")); e++) {
            const char *end = strchr(e, '}');
            printf("%.*s}\n", (int)(end ? end - e : 0), e);
            steps++;
        }
        free(events);
        if (rc == 0)
            break;
    }
    if (rc < 0)
        goto done;
    printf("trained %d step(s) with lpl %s\n", steps, LPL_VERSION);
    code = steps == 1 ? 0 : 1;
done:
    if (code && err.msg[0])
        fprintf(stderr, "train_one_step: %s\n", err.msg);
    lpl_run_free(run);
    lpl_alpaca_free(&train);
    lpl_tokenizer_free(tok);
    lpl_gpt2_free(model);
    lpl_gguf_close(g);
    return code;
}
