package store

// SchemaVersion exposes the schema version to the black-box tests, which
// write a newer one to check that Open refuses it.
const SchemaVersion = schemaVersion
