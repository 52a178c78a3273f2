"""Cooperation economics of joint PM2.5 control: least-cost abatement, cooperative games, health damages.

Public API: :func:`load_policy`, :func:`cooperate` (-> :class:`CooperationResult`), :func:`render_tables`,
:func:`performance_split`.
"""

from airshed.cooperation.analysis import CooperationResult, cooperate
from airshed.cooperation.performance import performance_split
from airshed.cooperation.policy import Policy, load_policy
from airshed.cooperation.tables import render_tables

__all__ = ["CooperationResult", "Policy", "cooperate", "load_policy", "performance_split", "render_tables"]
