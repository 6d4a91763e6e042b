/* Subcommands of the loralab program. Each lives in src/cli/cmd_<name>.c, parses its
 * own arguments (argv[0] is the subcommand name), prints --help, and returns the exit
 * code: 0 success, 1 run failed, 2 bad usage or input (one-line reason on stderr). */
#ifndef LPL_CLI_COMMANDS_H
#define LPL_CLI_COMMANDS_H

int lpl_cmd_ablate(int argc, char **argv);
int lpl_cmd_train(int argc, char **argv);
int lpl_cmd_eval(int argc, char **argv);
int lpl_cmd_count(int argc, char **argv);
int lpl_cmd_generate(int argc, char **argv);
int lpl_cmd_merge(int argc, char **argv);
int lpl_cmd_convert(int argc, char **argv);
int lpl_cmd_inspect(int argc, char **argv);
int lpl_cmd_tokenize(int argc, char **argv);
int lpl_cmd_bench(int argc, char **argv);
int lpl_cmd_pretrain(int argc, char **argv);
int lpl_cmd_collect(int argc, char **argv);
int lpl_cmd_report(int argc, char **argv);

#define LPL_EXIT_OK 0
#define LPL_EXIT_FAILED 1
#define LPL_EXIT_USAGE 2

#endif
