"""The technician console in a real browser: log in, watch the floor, acknowledge, open a bed, extract."""

from playwright.sync_api import expect

from nexus.monitor.glitch import Glitch

PASSWORD = "correct horse battery staple"


def _login(page, base):
    page.goto(base + "/")
    page.fill("input[name=username]", "tech")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_wrong_password_shows_an_error(served, page):
    base, _ = served
    page.goto(base + "/")
    page.fill("input[name=username]", "tech")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("Wrong username or password")
    expect(page.locator("#floor-view")).to_be_hidden()


def test_floor_alarms_session_and_extraction(served, page, artifacts):
    base, service = served
    beds = service.beds()
    _login(page, base)

    tiles = page.locator(".tile[data-session]")
    expect(tiles).to_have_count(6)
    faulty = page.locator(f'.tile[data-session="{beds[1]["session"]}"]')
    expect(faulty).to_have_attribute("data-alarm", "low")
    for b in (beds[0], beds[2]):
        expect(page.locator(f'.tile[data-session="{b["session"]}"]')).to_have_attribute("data-alarm", "none")

    # a high alarm reaches the floor through the WebSocket, flashing red
    service.raise_glitch(Glitch(beds[3]["session"], 94.0, "dropout", "No samples for 2 s; the stream vanished."))
    service.raise_glitch(Glitch(beds[4]["session"], 94.0, "clock_skew", "Timestamps went back by 0.4 s."))
    high = page.locator(f'.tile[data-session="{beds[3]["session"]}"]')
    expect(high).to_have_attribute("data-alarm", "high")
    expect(page.locator(f'.tile[data-session="{beds[4]["session"]}"]')).to_have_attribute("data-alarm", "medium")
    colour = high.evaluate("el => getComputedStyle(el.querySelector('.alarm')).backgroundColor")
    assert colour == "rgb(224, 22, 43)"
    assert high.evaluate("el => getComputedStyle(el).animationName") == "flash-high"
    low_anim = faulty.evaluate("el => getComputedStyle(el).animationName")
    assert low_anim == "none"  # low priority: cyan, steady
    expect(page.locator("#alarm-list li")).to_have_count(3)
    page.screenshot(path=str(artifacts / "floor.png"), full_page=True)

    # acknowledge the high alarm from the alarm list
    page.locator('#alarm-list li[data-priority="high"] button').click()
    expect(high).to_have_attribute("data-alarm", "none")
    expect(page.locator("#alarm-list li")).to_have_count(2)

    # open a bed: its hypnogram grows as the night goes on
    first = page.locator(f'.tile[data-session="{beds[0]["session"]}"]')
    first.click()
    expect(page.locator("#session-view")).to_be_visible()
    canvas = page.locator("#hypnogram")
    expect(canvas).to_have_attribute("data-epochs", "3")
    service.advance(60.0)
    expect(canvas).to_have_attribute("data-epochs", "5")
    expect(page.locator("#s-meta")).to_contain_text("5 epochs")
    assert page.evaluate("[plural(1, 'epoch'), plural(0, 'bed'), plural(6, 'bed')]") == ["1 epoch", "0 beds", "6 beds"]
    events = page.locator("#s-events")  # an empty list says so instead of a bare heading
    assert events.evaluate("el => el.children.length") == 0
    assert events.evaluate("el => getComputedStyle(el, '::before').content") == '"None so far."'
    page.screenshot(path=str(artifacts / "session.png"), full_page=True)

    # extract it, with confirmation and a mode: stimulation stops at once, the wake plays, then the session ends
    page.click("#s-extract")
    expect(page.locator("#confirm-mode")).to_have_value("gentle")  # the default: the gentlest wake
    page.select_option("#confirm-mode", "immediate")
    page.click("#confirm-ok")
    expect(page.locator("#session-view")).to_have_attribute("data-extraction", "immediate")
    expect(page.locator("#s-meta")).to_contain_text("immediate wake")
    assert service.bed(beds[0]["session"])["extraction"]["safe"] is True
    service.advance(90.0)
    expect(page.locator("#s-meta")).to_contain_text("ended")
    expect(page.locator("#s-extract")).to_be_disabled()
    assert service.bed(beds[0]["session"])["lease"] in ("safe", "none")

    # back on the floor: release every other bed to natural sleep, then end them all
    page.click("nav a")
    expect(first).to_have_attribute("data-state", "ended")
    page.click("#extract-all")
    page.select_option("#confirm-mode", "release")
    page.click("#confirm-ok")
    expect(page.locator('.tile[data-extraction="release"]')).to_have_count(5)
    expect(page.locator('.tile[data-state="running"]')).to_have_count(5)  # released beds record on
    page.screenshot(path=str(artifacts / "floor-released.png"), full_page=True)
    page.click("#extract-all")
    page.select_option("#confirm-mode", "end")
    page.click("#confirm-ok")
    expect(page.locator('.tile[data-state="ended"]')).to_have_count(6)
    expect(page.locator("#facility")).to_contain_text("0/6 beds running")
    assert {b["state"] for b in service.beds()} == {"ended"}
    page.screenshot(path=str(artifacts / "floor-extracted.png"), full_page=True)
