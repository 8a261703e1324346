"""The API's address shows its reference (Swagger UI served by the connector, offline), and the pages
link an icon that the browser can fetch, as can /favicon.ico, in real Chromium."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.e2e.browser.conftest import playwright_api, screenshot

expect = playwright_api.expect


def test_the_api_address_shows_its_reference_with_nothing_from_elsewhere(page, stack):
    own = urlsplit(stack.connector_url).netloc
    elsewhere: list[str] = []

    def only_the_connector(route) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:  # offline: anything from another host would not load
            elsewhere.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_the_connector)
    page.goto("/api/v1/")
    page.wait_for_url("**/api/v1/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Channel connector")
    expect(page.get_by_role("button", name="Authorize")).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/integrations").first).to_be_visible()
    screenshot(page, "api-reference")
    assert elsewhere == [], f"the reference asked other hosts: {elsewhere}"


def test_the_icon_is_linked_and_favicon_ico_answers(page, stack):
    page.goto("/admin/login")
    href = page.locator('link[rel="icon"]').get_attribute("href")
    found = page.evaluate(
        """async (urls) => Promise.all(urls.map(async (url) => {
             const answer = await fetch(url);
             return [url, answer.status, answer.headers.get("content-type")];
           }))""",
        [href, "/favicon.ico"],
    )
    for url, status, kind in found:
        assert status == 200 and kind.startswith("image/svg+xml"), (url, status, kind)
