"""A sensor over the hubs the code location loaded: each tick calls `evaluate(context, hubs)`."""

from collections.abc import Callable

from dagster import DefaultSensorStatus, sensor

from tess_platform.hubs import Hubs


def hub_sensor(name: str, evaluate: Callable, hubs: Hubs, decorator=sensor, **options):
    @decorator(name=name, default_status=DefaultSensorStatus.RUNNING, **options)
    def _sensor(context):
        return evaluate(context, hubs)

    return _sensor
