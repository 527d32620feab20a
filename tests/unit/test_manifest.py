import pytest

from vehicle_host.bundles.manifest import parse_manifest
from vehicle_host.errors import BundleError


def doc(**extra):
    base = {
        "pages": ["pages/index/index", "pages/me/me"],
        "vehicle": {"id": "com.dealer.test", "name": "Test", "version": "1.0.0"},
    }
    vehicle = extra.pop("vehicle", {})
    base["vehicle"].update(vehicle)
    base.update(extra)
    return base


def test_network_allow_list_defaults_to_nothing_and_is_normalised():
    assert parse_manifest(doc()).allow_list == ()
    manifest = parse_manifest(doc(vehicle={"network": ["API.Dealer.example", "127.0.0.1:8080"]}))
    assert manifest.allow_list == ("api.dealer.example", "127.0.0.1:8080")


@pytest.mark.parametrize("bad", [["http://x.example/"], ["a b"], "x.example", [1], ["x"] * 40])
def test_bad_allow_lists_are_refused_with_the_field_named(bad):
    with pytest.raises(BundleError, match=r"vehicle\.network"):
        parse_manifest(doc(vehicle={"network": bad}))


def test_tab_bar_routes_must_be_pages():
    tabs = {"list": [{"pagePath": "pages/index/index", "text": "Home"}, {"pagePath": "pages/me/me"}]}
    assert parse_manifest(doc(tabBar=tabs)).tab_routes == ("pages/index/index", "pages/me/me")
    tabs["list"][1]["pagePath"] = "pages/nope/nope"
    with pytest.raises(BundleError, match="not one of the app's pages"):
        parse_manifest(doc(tabBar=tabs))
    with pytest.raises(BundleError, match="2 to 5"):
        parse_manifest(doc(tabBar={"list": [{"pagePath": "pages/index/index"}]}))
