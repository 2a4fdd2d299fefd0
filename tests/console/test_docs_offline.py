"""The API docs (Swagger UI at /docs, ReDoc at /redoc) render in chromium with every request off this server refused."""

import re

from playwright.sync_api import expect


def _offline(page, base):
    """Refuse every request that does not go to ``base``; return the list of refused URLs."""
    refused: list[str] = []

    def route(r):
        if r.request.url.startswith(base):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return refused


def test_swagger_ui_renders_the_api_offline(served, page, artifacts):
    base, _ = served
    refused = _offline(page, base)
    page.goto(base + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Bedtime Nexus")
    # the operations come from our own /openapi.json
    expect(page.locator(".opblock-summary-path", has_text="/api/health")).to_have_count(1)
    expect(page.locator(".opblock-summary-path", has_text="/api/sessions/{session}/extract")).to_have_count(1)
    page.screenshot(path=str(artifacts / "docs-swagger.png"))
    assert refused == []


def test_redoc_renders_the_api_offline(served, page, artifacts):
    base, _ = served
    refused = _offline(page, base)
    page.goto(base + "/redoc")
    expect(page.locator("h1", has_text=re.compile("Bedtime Nexus"))).to_be_visible(timeout=15000)
    expect(page.get_by_text("/api/health").first).to_be_attached()
    page.screenshot(path=str(artifacts / "docs-redoc.png"))
    assert refused == []
