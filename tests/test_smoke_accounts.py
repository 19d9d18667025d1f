from tests.conftest import log_in, post_form, sign_up


def test_sign_up_log_out_log_in(client, ctx):
    r = sign_up(client, "Ana.Photos")
    assert r.status_code == 303, r.text
    assert client.get("/").text.count("ana.photos") >= 1
    r = post_form(client, "/logout", {}, token_from="/")
    assert r.status_code == 303
    assert "Log in" in client.get("/").text
    assert log_in(client, "ana.photos").status_code == 303
