"""The holder record a department receives, built in one place for every way it leaves the hub.

The relay's webhooks, the changes feed, a look-up and a tap at a service window all send the
same thing: the holder record (subject `holder-record`) of an event or of a request, projected
by the department's agreement in force and valid against the holder-record version in use.

- `records`: the whole record, built from the registry's rows; `RecordUnavailable`.
- `terms`: the agreement in force and the version in use, read afresh (`read_*`) or from this
  process's memo (`Terms.remembered_*`).
- `publisher`: `Publisher`, the bundle that builds records and their projection for a
  department, and `OnDemand`, a record asked for now rather than published for an event.
"""
