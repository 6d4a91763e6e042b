/* Floats written as text (lpl/core/floats.h). */
#include "lpl/core/floats.h"

#include <stdio.h>
#include <stdlib.h>

double lpl_short_double(float f)
{
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if ((float)strtod(buf, NULL) == f)
            break;
    }
    return strtod(buf, NULL);
}
