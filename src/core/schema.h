/* Migrations compiled in from schema/NNN_*.sql (see cmake/embed_schema.cmake). */
#ifndef PROMPTD_SCHEMA_H
#define PROMPTD_SCHEMA_H

struct schema_migration {
  int version;        /* NNN of the file name; strictly increasing */
  const char *name;   /* file name, for messages */
  const char *sql;    /* whole file, NUL-terminated */
};

extern const struct schema_migration schema_migrations[];
extern const int schema_migration_count;

#endif
