"""Updating apps from a USB drive: hotplug events, a read-only mount, the signed snapshot on it.

``hotplug`` reports block devices as they come and go, ``mount`` mounts one read-only for the
length of an import, ``limits`` bounds what a drive may hold and ``importer`` ties them to the
same trust root and ``Syncer`` as the network update path.
"""
