/* Floats written as text: the shortest decimal that reads back to the same float. */
#ifndef LPL_FLOATS_H
#define LPL_FLOATS_H

/* f as a double holding the shortest decimal (6 to 9 significant digits) that reads
 * back to f, so 0.1f is written 0.1 and 2e-4f 0.0002, not 0.00019999999494757503. */
double lpl_short_double(float f);

#endif
