"""A person who uses only the keyboard: moves focus with Tab and Shift+Tab, and can always see where it is."""

from __future__ import annotations

from playwright.sync_api import Locator, Page

MAX_STOPS = 80  # Tab presses before giving up: more than any dashboard page has focusable elements

# The focused element's outline as the page draws it, and whether the browser shows focus there (:focus-visible).
FOCUS_STYLE = """e => {
  const style = getComputedStyle(e);
  return {visible: e.matches(':focus-visible'), style: style.outlineStyle, width: parseFloat(style.outlineWidth),
          color: style.outlineColor, ring: style.boxShadow};
}"""


def is_focused(target: Locator) -> bool:
    return bool(target.evaluate("e => e === document.activeElement"))


def focused_description(page: Page) -> str:
    return str(page.evaluate("document.activeElement ? document.activeElement.outerHTML.slice(0, 120) : ''"))


def assert_focus_visible(target: Locator) -> None:
    """The focused element shows the dashboard's focus ring: a solid outline at least 2 px wide plus a dark ring."""
    focus = target.evaluate(FOCUS_STYLE)
    assert focus["visible"], f"{target} has focus but not :focus-visible"
    assert focus["style"] == "solid" and focus["width"] >= 2, f"no visible outline on {target}: {focus}"
    assert focus["ring"] != "none", f"no contrasting ring around the outline of {target}: {focus}"


def tab_to(page: Page, target: Locator, *, backwards: bool = False) -> None:
    """Press Tab (or Shift+Tab) until the target has focus, then check that the focus can be seen."""
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(MAX_STOPS):
        page.keyboard.press(key)
        if is_focused(target):
            assert_focus_visible(target)
            return
    raise AssertionError(f"{key} never reached {target}; focus is on {focused_description(page)}")
