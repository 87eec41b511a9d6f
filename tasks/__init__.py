"""One module per pipeline stage: a plain function that does the work and its @task."""

from blocks.settings import export_prefect_defaults

# Prefect reads its settings when it is first imported, and an unsaved storage block cannot
# be passed to @task, so results are pointed at our work dir through its environment here,
# before any stage module imports prefect.
export_prefect_defaults()
