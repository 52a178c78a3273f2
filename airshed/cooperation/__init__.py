"""Cooperation economics of joint PM2.5 control: the gamma game, the target game, health damages.

Public API: :func:`load_policy`, :func:`cooperate` (-> :class:`GammaResult` or :class:`TargetResult`),
:func:`render_tables`, :func:`performance_split`.
"""

from airshed.cooperation.analysis import CooperationResult, GammaResult, TargetResult, cooperate
from airshed.cooperation.performance import performance_split
from airshed.cooperation.policy import Policy, load_policy
from airshed.cooperation.tables import render_tables

__all__ = [
    "CooperationResult", "GammaResult", "Policy", "TargetResult", "cooperate", "load_policy",
    "performance_split", "render_tables",
]
