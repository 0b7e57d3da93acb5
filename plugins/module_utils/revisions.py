# -*- coding: utf-8 -*-
# Copyright: meshfleet contributors
# Apache License 2.0 (see LICENSE)
"""Istio versions, revision names and the upgrade-jump policy (pure logic)."""

from __future__ import annotations

import re

from ansible_collections.meshfleet.istio.plugins.module_utils.errors import MeshfleetError

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
VERSION = re.compile(r"^(?P<major>\d+)\.(?P<minor>\d+)(?:\.(?P<patch>\d+)|-(?P<build>dev))$")


class VersionError(MeshfleetError, ValueError):
    """An Istio version or revision name that cannot be used."""


class IstioVersion(object):
    """A release (1.31.0) or a branch build (1.30-dev, ordered before the minor's releases)."""

    def __init__(self, text):
        match = VERSION.match(str(text).strip())
        if not match:
            raise VersionError(
                "%r is not an Istio version: use MAJOR.MINOR.PATCH such as 1.31.0 "
                "(or MAJOR.MINOR-dev for a branch build)" % (text,))
        self.text = str(text).strip()
        self.major = int(match.group("major"))
        self.minor = int(match.group("minor"))
        self.patch = int(match.group("patch")) if match.group("patch") is not None else -1
        self.is_release = match.group("build") is None

    @property
    def minor_key(self):
        return (self.major, self.minor)

    @property
    def minor_text(self):
        return "%d.%d" % self.minor_key

    def key(self):
        return (self.major, self.minor, self.patch)

    def __eq__(self, other):
        return isinstance(other, IstioVersion) and self.text == other.text

    def __hash__(self):
        return hash(self.text)

    def __lt__(self, other):
        return self.key() < other.key()

    def __str__(self):
        return self.text

    __repr__ = __str__


def revision_name(version):
    """The revision a version installs as: dots become dashes (1.31.0 -> 1-31-0)."""
    return check_revision_name(str(IstioVersion(version)).replace(".", "-"))


def check_revision_name(name):
    """Revision and tag names end up in object names and label values: DNS-1123 labels."""
    if not name or len(name) > 63 or not DNS_LABEL.match(name):
        raise VersionError(
            "%r is not a valid revision or tag name: use lower-case letters, digits and '-', "
            "at most 63 characters, starting and ending with a letter or digit (e.g. 1-31-0)"
            % (name,))
    return name


def minor_distance(current, target):
    """How many minors `target` is ahead of `current` (negative when behind)."""
    current, target = IstioVersion(current), IstioVersion(target)
    if current.major != target.major:
        raise VersionError("cannot move between Istio major versions (%s -> %s)" % (current, target))
    return target.minor - current.minor


def check_upgrade_jump(current, target, max_minors=1):
    """Refuse downgrades and jumps of more minors than the policy allows.

    The guide asks for one minor at a time; Istio supports canary upgrades of at most two.
    """
    if not 1 <= max_minors <= 2:
        raise VersionError("the allowed jump is 1 or 2 minors (Istio supports at most 2 for "
                           "canary upgrades), not %s" % max_minors)
    distance = minor_distance(current, target)
    if IstioVersion(target) < IstioVersion(current):
        raise VersionError("%s -> %s is a downgrade; use the rollback playbook instead"
                           % (current, target))
    if distance > max_minors:
        raise VersionError(
            "%s -> %s jumps %d minors; the policy allows %d. Upgrade through %s first, or raise "
            "the allowed jump (at most 2)"
            % (current, target, distance, max_minors, _next_minor(current)))
    return distance


def _next_minor(version):
    version = IstioVersion(version)
    return "%d.%d" % (version.major, version.minor + 1)
