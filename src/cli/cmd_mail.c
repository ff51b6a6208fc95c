/*
 * promptd mail parse: the event a message file would produce and whether
 * the mail filters would skip it, so filters can be tried without a
 * mailbox.
 *
 * The parse and the decision are the library's (mail/mime.h,
 * mail/mail_filter.h), the same calls the IMAP trigger makes; this file
 * only reads the file and prints.  --json prints one object whose shape is
 * a documented interface: {"event": {...}, "skip": bool,
 * "skip_reason": string|null}.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/err.h"
#include "mail/mail_filter.h"
#include "mail/mime.h"

#include "cli/cli.h"

#define MAX_ACCOUNTS 16

static const char usage_text[] =
    "usage: promptd mail parse FILE.eml [--json] [--account ADDRESS]...\n"
    "                          [--from RE] [--to RE] [--subject RE] [--keep-automated]\n"
    "\n"
    "Prints the event a message would give a recipe (sender, recipients, subject,\n"
    "date, ids, the text a prompt receives, attachments) and whether the mail filters\n"
    "would skip it, and why. FILE.eml is a raw RFC 5322 message (- for standard input).\n"
    "\n"
    "  --json            one JSON object: {\"event\": {...}, \"skip\": true|false,\n"
    "                    \"skip_reason\": \"...\"|null}\n"
    "  --account ADDR    an address of the mailbox's own account: its own mail is\n"
    "                    skipped (repeatable)\n"
    "  --from RE         keep only mail whose sender address or name matches RE\n"
    "  --to RE           keep only mail with a To/Cc address or name matching RE\n"
    "  --subject RE      keep only mail whose subject matches RE\n"
    "  --keep-automated  do not skip auto-generated, bulk and list mail\n"
    "\n"
    "Patterns are POSIX extended regular expressions; a leading (?i) ignores case.\n"
    "Skipped by default: Auto-Submitted, X-Autoreply, Precedence bulk|list|junk,\n"
    "List-Id, an empty Return-Path, mailer-daemon and similar system senders, and\n"
    "no-reply senders.\n"
    "\n"
    "Exit codes: 0 ok (whether skipped or not), 1 unreadable file or bad pattern,\n"
    "2 usage error.\n";

static const char *str_or(const cJSON *o, const char *key, const char *dflt) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : dflt;
}

static void print_person(const char *label, const cJSON *p) {
  if (!cJSON_IsObject(p)) return;
  const char *name = str_or(p, "name", ""), *addr = str_or(p, "address", "");
  if (*name)
    printf("%-13s%s <%s>\n", label, name, addr);
  else
    printf("%-13s%s\n", label, addr);
}

static void print_people(const char *label, const cJSON *list) {
  const cJSON *p;
  int first = 1;
  cJSON_ArrayForEach(p, list) {
    print_person(first ? label : "", p);
    first = 0;
  }
}

static void print_human(const cJSON *ev, int skip, const char *why) {
  print_person("From:", cJSON_GetObjectItemCaseSensitive(ev, "from"));
  print_person("Reply-To:", cJSON_GetObjectItemCaseSensitive(ev, "reply_to"));
  print_people("To:", cJSON_GetObjectItemCaseSensitive(ev, "to"));
  print_people("Cc:", cJSON_GetObjectItemCaseSensitive(ev, "cc"));
  printf("%-13s%s\n", "Subject:", str_or(ev, "subject", ""));
  printf("%-13s%s\n", "Date:", str_or(ev, "date", "(none)"));
  printf("%-13s%s\n", "Message-ID:", str_or(ev, "message_id", "(none)"));
  const char *irt = str_or(ev, "in_reply_to", NULL);
  if (irt) printf("%-13s%s\n", "In-Reply-To:", irt);
  int nrefs = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ev, "references"));
  if (nrefs) printf("%-13s%d message%s\n", "References:", nrefs, nrefs == 1 ? "" : "s");
  const cJSON *atts = cJSON_GetObjectItemCaseSensitive(ev, "attachments");
  printf("%-13s%d\n", "Attachments:", cJSON_GetArraySize(atts));
  const cJSON *a;
  cJSON_ArrayForEach(a, atts) {
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(a, "size");
    printf("  - %s (%s, %.0f bytes%s)\n", str_or(a, "filename", "(unnamed)"),
           str_or(a, "content_type", "?"), cJSON_IsNumber(size) ? size->valuedouble : 0.0,
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "inline")) ? ", inline" : "");
  }
  if (skip)
    printf("%-13syes: %s\n", "Skip:", why);
  else
    printf("%-13sno\n", "Skip:");
  const char *text = str_or(ev, "text", "");
  const char *body_type = str_or(ev, "body_type", "no body");
  int cut = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev, "text_truncated"));
  printf("\n--- text given to prompts (%zu bytes, from %s%s) ---\n", strlen(text), body_type,
         cut ? ", truncated" : "");
  fputs(text, stdout);
  if (*text && text[strlen(text) - 1] != '\n') fputc('\n', stdout);
  const char *full = str_or(ev, "full_text", "");
  size_t fn = strlen(full), tn = strlen(text);
  while (fn && strchr(" \t\n", full[fn - 1])) fn--; /* the trim also drops trailing blanks */
  if (fn > tn)
    printf("--- full_text holds %zu more bytes: quoted history, signature ---\n", fn - tn);
}

static int parse_file(const char *path, int json, const mail_filter *f) {
  perr e;
  size_t len = 0;
  char *raw = cli_read_file(path, MAIL_MAX_MESSAGE, &len, &e);
  if (!raw) return cli_fail(EXIT_RUNTIME, "mail parse: %s", e.msg);
  cJSON *ev = NULL;
  int rc = mail_parse(raw, len, NULL, &ev, &e);
  free(raw);
  if (rc) return cli_fail(EXIT_RUNTIME, "mail parse: %s: %s", path, e.msg);
  char why[512];
  int skip = mail_skip_reason(ev, f, why, sizeof why);
  if (skip < 0) {
    cJSON_Delete(ev);
    return cli_fail(EXIT_RUNTIME, "mail parse: %s", why);
  }
  if (!json) {
    print_human(ev, skip, why);
    cJSON_Delete(ev);
    return EXIT_OK;
  }
  cJSON *out = cJSON_CreateObject();
  cJSON *reason = skip ? cJSON_CreateString(why) : cJSON_CreateNull();
  if (!out || !reason || !cJSON_AddItemToObject(out, "event", ev)) {
    cJSON_Delete(out);
    cJSON_Delete(reason);
    cJSON_Delete(ev);
    return cli_fail(EXIT_RUNTIME, "mail parse: out of memory");
  }
  if (!cJSON_AddBoolToObject(out, "skip", skip) ||
      !cJSON_AddItemToObject(out, "skip_reason", reason)) {
    cJSON_Delete(out);
    return cli_fail(EXIT_RUNTIME, "mail parse: out of memory");
  }
  cli_print_json(out);
  return EXIT_OK;
}

int cmd_mail(int argc, char **argv, const cli_globals *g) {
  (void)g; /* parsing touches no database */
  if (cli_wants_help(argc, argv)) return fputs(usage_text, stdout), EXIT_OK;
  if (!cli_subcommand_is(argc, argv, "mail", "parse")) return EXIT_USAGE;

  static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                       {"account", required_argument, 0, 'a'},
                                       {"from", required_argument, 0, 'f'},
                                       {"to", required_argument, 0, 't'},
                                       {"subject", required_argument, 0, 's'},
                                       {"keep-automated", no_argument, 0, 'k'},
                                       {0, 0, 0, 0}};
  const char *own[MAX_ACCOUNTS];
  mail_filter f = {.own = own};
  int json = 0;
  int sub_argc = argc - 1;
  char **sub_argv = argv + 1;
  int c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(sub_argc, sub_argv, ":", opts, NULL)) != -1) {
    switch (c) {
      case 'j': json = 1; break;
      case 'a':
        if (f.n_own == MAX_ACCOUNTS)
          return cli_fail(EXIT_USAGE, "mail parse: at most %d --account options", MAX_ACCOUNTS);
        own[f.n_own++] = optarg;
        break;
      case 'f': f.from = optarg; break;
      case 't': f.to = optarg; break;
      case 's': f.subject = optarg; break;
      case 'k': f.keep_automated = 1; break;
      case ':': return cli_fail(EXIT_USAGE, "mail parse: %s needs a value", sub_argv[optind - 1]);
      default: return cli_fail(EXIT_USAGE, "mail parse: unknown option '%s'", sub_argv[optind - 1]);
    }
  }
  if (optind >= sub_argc) return cli_fail(EXIT_USAGE, "mail parse: missing FILE.eml (see --help)");
  if (sub_argc - optind > 1)
    return cli_fail(EXIT_USAGE, "mail parse: unexpected argument '%s'", sub_argv[optind + 1]);
  perr e;
  if (mail_filter_check(&f, &e)) return cli_fail(EXIT_RUNTIME, "mail parse: %s", e.msg);
  return parse_file(sub_argv[optind], json, &f);
}
