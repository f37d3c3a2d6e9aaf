"""Published outputs: descriptive replication, figures, tables, the final report and
statistical disclosure control. Everything here reads processed data or result files and
writes aggregates under ``results/`` only."""
