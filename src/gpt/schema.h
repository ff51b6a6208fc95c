/*
 * gpt/schema: a step's output_schema, checked twice.
 *
 * At import, gpt_schema_strict() accepts only what OpenAI's strict
 * Structured Outputs mode can express and returns the normalised copy that
 * is stored with the recipe.  At run time, gpt_schema_validate() checks the
 * model's reply against that copy; its message is short enough to hand back
 * to the model in the one repair turn.
 *
 * The strict subset (OpenAI's Structured Outputs guide):
 *   types     string, number, integer, boolean, object, array, null, and
 *             unions of them (["string", "null"]); enum, const, anyOf
 *   keywords  string: pattern, format (date-time, time, date, duration,
 *             email, hostname, ipv4, ipv6, uuid); number: minimum, maximum,
 *             exclusiveMinimum, exclusiveMaximum, multipleOf; array: items,
 *             minItems, maxItems; description and title anywhere
 *   objects   every property listed in required (an optional one is a
 *             union with null), additionalProperties false, properties given
 *   root      an object (not anyOf); $defs / definitions at the root, local
 *             $ref ("#", "#/$defs/NAME"), recursion allowed
 *   limits    5,000 object properties, 10 levels of object nesting, 1,000
 *             enum values, 120,000 characters of property names, definition
 *             names, enum and const values; an enum of more than 250 strings
 *             may total 15,000 characters
 * Refused: allOf, oneOf, not, if/then/else, dependentRequired,
 * dependentSchemas, patternProperties, propertyNames, min/maxProperties,
 * unevaluated*, prefixItems, contains, uniqueItems, default, nullable, any
 * other keyword, and additionalProperties other than false.
 *
 * Normalisation: additionalProperties: false is added to every object that
 * lacks it, and a property left out of required whose schema allows null is
 * added to required (strict mode wants them all listed; null stands for
 * "absent").  A property left out whose schema does not allow null is
 * refused with the fix spelled out.
 *
 * promptd-checked keywords: minLength and maxLength are accepted and kept in
 * the stored schema, so the run-time check enforces them (with a repair
 * turn), but strict mode does not know them: gpt_schema_wire() gives the
 * copy to send in response_format, without them.
 */
#ifndef PROMPTD_GPT_SCHEMA_H
#define PROMPTD_GPT_SCHEMA_H

#include <cjson/cJSON.h>

#include "core/err.h"

/* Checks schema against the strict subset.  0 and *out = the normalised
 * copy (caller deletes); -1 with "output_schema.PATH: problem; fix" in e. */
int gpt_schema_strict(const cJSON *schema, cJSON **out, perr *e);

/* The copy of a normalised schema to send to the API (promptd-checked
 * keywords removed); NULL when out of memory.  Caller deletes. */
cJSON *gpt_schema_wire(const cJSON *strict);

/* Checks value against schema (normally gpt_schema_strict's output).
 * 0 when it conforms; -1 with "$.items[2].score: expected integer, got 7.5"
 * (the first failing location, what was expected, what came). */
int gpt_schema_validate(const cJSON *schema, const cJSON *value, perr *e);

#endif
