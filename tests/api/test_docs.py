"""The API docs pages load nothing from elsewhere: their scripts and styles come from this server."""

import re


def test_docs_pages_load_their_assets_from_this_server(facility):
    for path in ("/docs", "/redoc"):
        html = facility.client.get(path).text
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(r"""url: ?["']([^"']+)["']""", html)
        assert urls, path
        assert all(u.startswith("/") for u in urls), (path, urls)  # nothing from a CDN
        for u in urls:
            if u.endswith((".js", ".css")):
                r = facility.client.get(u)
                assert r.status_code == 200 and len(r.content) > 10_000, u
