/* demo_post: posts the demo's webhook samples, signed, to promptd's server. */
#ifndef PROMPTD_DEMO_POST_H
#define PROMPTD_DEMO_POST_H

#include <cjson/cJSON.h>

#include "core/err.h"

struct ev_loop;
typedef struct demo_posts demo_posts;

/* When the sample file's sign.secret_env is unset, sets it to fallback (so
 * the daemon and the demo client agree) and returns 1. */
int demo_posts_secret_env(const cJSON *doc, const char *fallback);
/* Starts every post of every sample file in docs (a JSON array) on loop. */
demo_posts *demo_posts_start(struct ev_loop *loop, int port, const cJSON *docs, perr *e);
/* 1 once every post has been answered. */
int demo_posts_done(const demo_posts *p);
int demo_posts_accepted(const demo_posts *p);
int demo_posts_refused(const demo_posts *p);
void demo_posts_free(demo_posts *p);

#endif
