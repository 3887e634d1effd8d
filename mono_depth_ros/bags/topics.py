"""Which topics of a bag to read: the camera image and CameraInfo topics by type or by name."""

from mono_depth_ros.bags.bag_io import BagError

IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
INFO_TYPE = 'sensor_msgs/msg/CameraInfo'


def pick_topic(topics: dict[str, tuple[str, int]], types: tuple[str, ...], given: str | None,
               what: str, prefer: str | None = None) -> str | None:
    """The topic to use: given (checked), the preferred one, or the only one of those types."""
    if given:
        if given not in topics or topics[given][0] not in types:
            raise BagError(f'{what} topic {given} is not in the bag with type {types}; bag '
                           f'topics: {sorted(topics)}')
        return given
    found = sorted(t for t, (kind, _) in topics.items() if kind in types)
    if prefer in found:
        return prefer
    if len(found) > 1:
        raise BagError(f'the bag has several {what} topics {found}; choose one with '
                       f'--{what.replace(" ", "-")}-topic')
    return found[0] if found else None
