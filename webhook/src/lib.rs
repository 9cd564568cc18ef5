//! Conversion and admission webhooks for cellfed types. It never talks to a cluster.
