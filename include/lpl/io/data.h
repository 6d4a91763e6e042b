/* Alpaca instruction data: [{"instruction", "input"?, "output"}] turned into token
 * sequences with the Alpaca prompt template, end-of-text appended. */
#ifndef LPL_DATA_H
#define LPL_DATA_H

#include "lpl/core/common.h"
#include "lpl/io/tokenizer.h"

LPL_BEGIN_DECLS

typedef struct {
    char *instruction, *input, *output; /* input may be "" */
} lpl_alpaca_record;

typedef struct {
    lpl_alpaca_record *records;
    int n;
} lpl_alpaca_set;

/* Parses Alpaca JSON. On malformed JSON (with position), a non-array, or records
 * missing instruction/output or having non-string fields, returns LPL_ERR_FORMAT with a
 * message naming the record index and field (all problems, up to a limit, one per line). */
lpl_status lpl_alpaca_parse(const char *json, size_t len, lpl_alpaca_set *out, lpl_error *err);
/* Reads the file at path and parses it as lpl_alpaca_parse; LPL_ERR_IO names the file. */
lpl_status lpl_alpaca_load(const char *path, lpl_alpaca_set *out, lpl_error *err);
/* Frees the records of s (not s itself). */
void lpl_alpaca_free(lpl_alpaca_set *s);

/* The Alpaca prompt for a record (everything before the response), malloc'd. */
char *lpl_alpaca_prompt(const lpl_alpaca_record *r);

/* What part of an Alpaca example a token belongs to: the fixed prompt text that every
 * example repeats, the record's instruction, its input, or the response (output and
 * end-of-text). A token that straddles two parts belongs to the part of its last byte. */
typedef enum {
    LPL_ROLE_TEMPLATE = 0,
    LPL_ROLE_INSTRUCTION = 1,
    LPL_ROLE_INPUT = 2,
    LPL_ROLE_RESPONSE = 3
} lpl_token_role;
#define LPL_N_ROLES 4

/* "template", "instruction", "input", "response" ("?" for anything else). */
const char *lpl_role_name(int role);

typedef struct {
    int *tokens;      /* T input ids */
    int *targets;     /* T next-token ids */
    uint8_t *mask;    /* T: 1 where the target is scored */
    uint8_t *role;    /* T: lpl_token_role of targets[t] */
    int T;
    int truncated;    /* 1 if the record was cut to max_len */
} lpl_example;

typedef struct {
    lpl_example *ex;
    int n;
    int n_truncated;
    int64_t n_scored;  /* total scored tokens */
} lpl_example_set;

/* Tokenizes records: prompt + output + <|endoftext|>, cut to max_len + 1 tokens
 * (T <= max_len). response_only != 0 scores only targets inside the response
 * (output and end-of-text); otherwise every target is scored. */
lpl_status lpl_examples_build(const lpl_alpaca_set *s, const lpl_tokenizer *tok, int max_len,
                              int response_only, lpl_example_set *out, lpl_error *err);
/* Frees the examples of s (not s itself). */
void lpl_examples_free(lpl_example_set *s);

/* Fisher-Yates permutation of 0..n-1 from seed into perm. */
void lpl_shuffle_indices(int *perm, int n, uint64_t seed);

LPL_END_DECLS

#endif
