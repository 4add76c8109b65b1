"""A run's configuration: the schema every config file fills in (`schema`), the recipes that reproduce
the published models (`recipes`, which `configs/*.py` call), and the resolved, frozen form a run reads
(`run_config.resolve`)."""
