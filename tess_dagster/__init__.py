"""The Dagster layer of tess-platform: assets, checks, jobs and sensors over the core
(tess_platform/, which imports nothing of Dagster), assembled in definitions.py."""
