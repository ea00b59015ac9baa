"""The built-in model's files, shipped with the package: ``model/`` (the exported EMA weights, config and
mel statistics, read by ``cuecraft.load_builtin()``), ``classifier/`` (the lead-instrument classifier
``cuecraft eval`` uses) and ``MODEL_CARD.md`` (data, steps, wall time, measured adherence). They are
made by ``python3 recipes/builtin.py --install``."""
