/* demo_google: the demo's fake Google side for recipes/forms-to-sheet.yaml. */
#ifndef PROMPTD_DEMO_GOOGLE_H
#define PROMPTD_DEMO_GOOGLE_H

#include "core/err.h"

typedef struct demo_google demo_google;

/* NULL without e set when rdir has no forms-to-sheet recipe; NULL with e
 * set when the fake could not be prepared. */
demo_google *demo_google_start(const char *rdir, const char *dir, perr *e);
/* The filled-in copy of the recipe, to import over the original. */
const char *demo_google_recipe(const demo_google *g);
/* The fake's base URL, for the configuration's google: section. */
const char *demo_google_url(const demo_google *g);
/* Form responses seeded (runs the demo waits for). */
int demo_google_expected(const demo_google *g);
/* Prints the sheet's rows. */
void demo_google_show(const demo_google *g);
void demo_google_stop(demo_google *g);

#endif
