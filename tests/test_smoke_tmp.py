from admin_views import registered_views

def test_every_page_renders_for_admin(app, client, login, world):
    login("admin")
    admin = app.extensions["admin"][0]
    for view in registered_views(admin):
        url = view.url + "/"
        r = client.get(url)
        print(url, r.status_code)
        assert r.status_code == 200, (url, r.get_data(as_text=True)[-3000:])
