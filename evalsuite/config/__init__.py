"""Configurations: YAML files naming a runner and its parameters, resolved into typed dataclasses
(:mod:`evalsuite.config.configuration`), and :class:`~evalsuite.config.runconfig.RunConfig`, the one
typed input of a run.
"""
