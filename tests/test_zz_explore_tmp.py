from tests.conftest import post, Login

def test_explore(app, client, login, world):
    login("support")
    assert client.get("/admin/device/").status_code == 200
    other = app.test_client()
    r = other.get("/admin/device/")
    print("anonymous other client:", r.status_code, r.headers.get("Location"))
    Login(other)("customer")
    r = client.get("/admin/device/")
    print("support client after customer login elsewhere:", r.status_code, "List (8)" in r.get_data(as_text=True))
