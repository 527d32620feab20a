import pytest

from vehicle_host.hub.navigation import MAX_DEPTH, NavigationError, PageEntry, PageStack, resolve_url

PAGES = ["pages/index/index", "pages/detail/detail", "pages/list/list", "pages/me/me"]
TABS = ["pages/index/index", "pages/me/me"]


def entry(i: int, route: str = "pages/detail/detail", **query: str) -> PageEntry:
    return PageEntry(i, route, dict(query))


def test_resolve_absolute_and_relative_urls_with_query():
    assert resolve_url("/pages/detail/detail?id=7&q=a%20b", None, PAGES) == (
        "pages/detail/detail",
        {"id": "7", "q": "a b"},
    )
    assert resolve_url("../list/list", "pages/detail/detail", PAGES) == ("pages/list/list", {})
    assert resolve_url("detail", "pages/detail/detail", ["pages/detail/detail"])[0] == "pages/detail/detail"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "url is required"),
        ("/pages/nope/nope", "not listed in app.json pages"),
        ("../../../etc/passwd", "outside the app"),
        ("/pages/detail/detail?" + "&".join(f"k{i}=1" for i in range(40)), "more than 32"),
        ("x" * 2000, "longer than 1024"),
    ],
)
def test_resolve_refuses_bad_urls_clearly(url, message):
    with pytest.raises(NavigationError, match=message):
        resolve_url(url, "pages/index/index", PAGES)


def test_navigate_to_pushes_and_back_pops_to_the_uncovered_page():
    stack = PageStack()
    stack.launch(entry(1, "pages/index/index"))
    step = stack.apply("navigateTo", new_page=entry(2))
    assert step.mode == "push" and step.opened == entry(2) and step.closed == ()
    stack.apply("navigateTo", new_page=entry(3, "pages/list/list"))
    back = stack.apply("navigateBack", delta=5)  # more than the stack: stops at the first page
    assert back.closed == (3, 2) and back.shown == 1 and stack.ids() == [1]
    with pytest.raises(NavigationError, match="first page"):
        stack.apply("navigateBack")


def test_redirect_replaces_the_top_and_relaunch_closes_everything():
    stack = PageStack()
    stack.launch(entry(1, "pages/index/index"))
    stack.apply("navigateTo", new_page=entry(2))
    step = stack.apply("redirectTo", new_page=entry(3, "pages/list/list"))
    assert step.mode == "replace" and step.closed == (2,) and stack.ids() == [1, 3]
    step = stack.apply("reLaunch", new_page=entry(4))
    assert step.mode == "reset" and step.closed == (1, 3) and stack.ids() == [4]


def test_the_stack_is_bounded_like_wechat():
    stack = PageStack()
    stack.launch(entry(1, "pages/index/index"))
    for i in range(2, MAX_DEPTH + 1):
        stack.apply("navigateTo", new_page=entry(i))
    with pytest.raises(NavigationError, match="stack is full"):
        stack.apply("navigateTo", new_page=entry(99))
    assert len(stack.pages) == MAX_DEPTH


def test_switch_tab_only_to_tab_pages_without_query():
    stack = PageStack()
    stack.launch(entry(1, "pages/index/index"))
    stack.apply("navigateTo", new_page=entry(2))
    with pytest.raises(NavigationError, match="needs a tabBar page"):
        stack.apply("switchTab", new_page=entry(3), tab_routes=TABS)
    with pytest.raises(NavigationError, match="query"):
        stack.apply("switchTab", new_page=entry(3, "pages/me/me", a="1"), tab_routes=TABS)
    with pytest.raises(NavigationError, match="use switchTab"):
        stack.apply("navigateTo", new_page=entry(3, "pages/me/me"), tab_routes=TABS)
    step = stack.apply("switchTab", new_page=entry(3, "pages/me/me"), tab_routes=TABS)
    assert step.mode == "reset" and step.closed == (1, 2) and stack.ids() == [3]
