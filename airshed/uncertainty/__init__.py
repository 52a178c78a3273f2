"""Uncertainty of every attribution: inventory, meteorology and particle-sampling ensembles.

* :mod:`.inventory` -- two-piece lognormal emission factors per (source region, sector, species) from
  published 95 % intervals;
* :mod:`.members` -- inventory members of a finished run by re-weighting its stored tagged contributions
  (:func:`.members.inventory_members` is the API for analyses run over the members);
* :mod:`.statistics` -- quantiles, the variance by source, batch means of particle classes;
* :mod:`.ensemble` -- the quantiles and variances added to the run file;
* :mod:`.meteorology` -- meteorology members (HYSPLIT offsets, ERA5 ensemble members) as run configs.
"""
