"""The pipeline, in the order data flows through it.

:mod:`~airshed.pipeline.inputs` reads a run's inputs onto the grid; :mod:`~airshed.pipeline.study` derives
what every work unit shares and feeds a core period by period; :mod:`~airshed.pipeline.reduction` reduces
a unit's hourly tagged fields; :mod:`~airshed.pipeline.units` splits a run into work units and runs one;
:mod:`~airshed.pipeline.accumulation` merges finished units into the run file and the period sums.
:mod:`airshed.scale` sends units to Dask and :mod:`airshed.runner` ties it all to one run file. Each module
imports only the ones before it.
"""
