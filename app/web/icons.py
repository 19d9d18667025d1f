"""The icon macros (templates/_icons.html, templates/posts/_icons.html) as template globals `icon` and `post_icon`.

An icon's SVG depends only on its name and size, and a feed page draws dozens of them: each (name, size) is rendered
by its macro once per process and reused. While templates reload (development), every call renders afresh.
"""

from __future__ import annotations

from collections.abc import Callable

from jinja2 import Environment
from markupsafe import Markup

ICON_SETS = {"icon": "_icons.html", "post_icon": "posts/_icons.html"}


def icon_function(env: Environment, template: str) -> Callable[..., Markup]:
    drawn: dict[tuple[str, int], Markup] = {}

    def icon(name: str, size: int = 24) -> Markup:
        found = drawn.get((name, size))
        if found is None:
            found = Markup(env.get_template(template).module.icon(name, size))
            if not env.auto_reload:
                drawn[(name, size)] = found
        return found

    return icon


def install(env: Environment) -> None:
    env.globals.update({name: icon_function(env, template) for name, template in ICON_SETS.items()})
