/* mail_account: the `mail:` configuration section (mail_account.h). */
#include "triggers/mail_account.h"

#include <string.h>

static const field_spec oauth2_fields[] = {
    {.name = "token_url", .type = FT_STRING, .flags = FIELD_REQUIRED,
     .help = "the provider's token endpoint (Google: https://oauth2.googleapis.com/token)"},
    {.name = "client_id", .type = FT_STRING, .flags = FIELD_REQUIRED, .help = "OAuth client id"},
    {.name = "client_secret", .type = FT_SECRET, .help = "OAuth client secret (a reference)"},
    {.name = "refresh_token", .type = FT_SECRET, .flags = FIELD_REQUIRED,
     .help = "the account's refresh token (a reference)"},
    {.name = NULL},
};

const field_spec mail_account_fields[] = {
    {.name = "imap", .type = FT_STRING,
     .help = "IMAP server: imaps://host[:port] (implicit TLS) or imap://host[:port]"},
    {.name = "smtp", .type = FT_STRING,
     .help = "SMTP server for email_send: smtps://host[:465] or smtp://host[:587]"},
    {.name = "starttls", .type = FT_BOOL,
     .help = "with imap:// and smtp://, require STARTTLS (default true)"},
    {.name = "user", .type = FT_STRING, .flags = FIELD_REQUIRED, .help = "login name"},
    {.name = "password", .type = FT_SECRET, .help = "password (a reference), or use oauth2"},
    {.name = "oauth2", .type = FT_OBJECT, .sub = oauth2_fields,
     .help = "XOAUTH2 login with a refresh token: token_url, client_id, client_secret, "
             "refresh_token"},
    {.name = "address", .type = FT_STRING, .help = "our address: From of replies (default: user)"},
    {.name = "name", .type = FT_STRING, .help = "display name for From"},
    {.name = "also", .type = FT_STRING_LIST,
     .help = "more addresses of this account: mail from them is never answered"},
    {.name = "drafts", .type = FT_STRING,
     .help = "drafts folder (default: the one marked \\Drafts by the server)"},
    {.name = "ca_file", .type = FT_STRING, .help = "PEM file of CAs to verify the servers with"},
    {.name = "insecure", .type = FT_BOOL,
     .help = "skip certificate checks (tests against a self-signed server only)"},
    {.name = NULL},
};

static const char *str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

int mail_account_get(const config *cfg, const char *name, mail_account *a, perr *e) {
  memset(a, 0, sizeof *a);
  const cJSON *sec = config_get_section(cfg, "mail");
  const cJSON *acct = sec ? cJSON_GetObjectItemCaseSensitive(sec, name) : NULL;
  if (!cJSON_IsObject(acct))
    return perr_set(e, "mail account \"%s\" is not in the configuration's mail: section", name);
  a->name = name;
  a->imap_url = str(acct, "imap");
  a->smtp_url = str(acct, "smtp");
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(acct, "starttls");
  a->starttls = st ? cJSON_IsTrue(st) : 1;
  a->insecure = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(acct, "insecure"));
  a->user = str(acct, "user");
  a->password_ref = str(acct, "password");
  a->oauth2 = cJSON_GetObjectItemCaseSensitive(acct, "oauth2");
  a->address = str(acct, "address") ? str(acct, "address") : a->user;
  a->display_name = str(acct, "name");
  a->also = cJSON_GetObjectItemCaseSensitive(acct, "also");
  a->drafts = str(acct, "drafts");
  a->ca_file = str(acct, "ca_file");
  if (!a->password_ref == !a->oauth2)
    return perr_set(e, "mail account \"%s\": give password or oauth2 (exactly one)", name);
  return 0;
}
