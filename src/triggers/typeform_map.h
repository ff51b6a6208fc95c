/*
 * typeform_map: a Typeform webhook body's answers as a flat object of
 * field values, the shape the form-export triggers give `event.fields`.
 *
 * Payload: https://www.typeform.com/developers/webhooks/example-payload/
 *
 * Keys.  Each answer names its question by `field.id`; the question's
 * title and ref come from `form_response.definition.fields[]` (a ref on
 * the answer's own `field` wins over the definition's).  Every answer gets
 *   - a primary key: its title; without a title (a question missing from
 *     the definition), its ref; without a ref, its field id;
 *   - a second key, its ref, when it has one that differs from the primary.
 * All primary keys are placed before any ref, so a title always wins over a
 * ref spelled the same.  When two answers share a primary key (two
 * questions titled "Name"), the first in answer order keeps it and the
 * later one falls back to its ref, then to its field id.  A ref whose key
 * is already taken is not added.  Titles are used exactly as defined, with
 * recall placeholders such as {{answer_60906475}} left in: the body carries
 * no resolved title.
 *
 * Values, by answer `type`:
 *   text, email, url, phone_number, date, file_url   the string
 *   number                                           the number
 *   boolean                                          true / false
 *   choice    its label, or its `other` text when there is no label
 *   choices   the labels as a list, followed by the `other` text if any
 *   payment   the payment object as sent (amount, last4, name, success)
 *   any other type: the answer's member named by its type, as sent
 *             (or the whole answer when there is none), so a new
 *             Typeform answer type loses nothing.
 */
#ifndef PROMPTD_TYPEFORM_MAP_H
#define PROMPTD_TYPEFORM_MAP_H

#include <cjson/cJSON.h>

#include "core/err.h"

/* The fields object (caller frees), or NULL with e naming the first
 * problem: a body that is not an object holding `form_response`, answers
 * that are not a list, an answer without `field.id` or `type`, or a known
 * type whose value is missing or of the wrong kind.  An absent `answers`
 * (nothing answered) gives an empty object. */
cJSON *typeform_fields(const cJSON *body, perr *e);

#endif
