//! Point-navi's directory and free-word search over HTTP on the database the run selects.

use crate::common::App;
use mykey_core::api::MunicipalityServices;
use mykey_server::services::catalog::Catalog;
use rust_decimal::Decimal;

async fn public(app: &App, path: &str) -> (u16, serde_json::Value) {
    let res = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_lists_services_and_search_finds_every_kind() {
    let app = App::start().await;
    let catalog = Catalog::new(&app.engine);
    let services = MunicipalityServices {
        municipality: 1,
        library: false,
        meibutsu_choice: true,
        shops: true,
        note: "shops from 2017-10-02".into(),
    };
    catalog.set_services(&services).await.unwrap();
    // Recording again replaces.
    catalog.set_services(&MunicipalityServices { library: true, ..services.clone() }).await.unwrap();
    catalog.add_product(1, "米粉のガトーショコラ抹茶", Decimal::new(6000, 0), "recommended").await.unwrap();
    catalog.add_product(2, "黒毛和牛カタルースライス", Decimal::new(5495, 0), "recommended").await.unwrap();
    let online = catalog.add_online_service("セキュリテ", "Securite", "crowdfunding").await.unwrap();
    assert!(catalog.add_online_service("x", "x", "lottery").await.is_err());

    let (s, d) = public(&app, "/v1/directory").await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["services"].as_array().unwrap().len(), 1, "{d}");
    assert_eq!(d["services"][0]["library"], true);
    assert_eq!(d["products"][1]["price_yen"], "5495");
    assert_eq!(d["online_services"][0]["id"], online);

    // One word finds a municipality, the shops in it and its products.
    let (s, r) = public(&app, "/v1/search?q=%E5%89%8D%E6%A9%8B").await; // 前橋
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["municipalities"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["shops"][0]["id"], app.shops[0], "{r}");
    assert_eq!(r["products"][0]["name"], "米粉のガトーショコラ抹茶");
    // Every word must match; a full-width space separates words.
    let (_, r) = public(&app, "/v1/search?q=%E5%92%8C%E7%89%9B%E3%80%80%E9%83%BD%E5%9F%8E").await; // 和牛　都城
    assert_eq!((r["products"].as_array().unwrap().len(), r["shops"].as_array().unwrap().len()), (1, 0), "{r}");
    let (_, r) = public(&app, "/v1/search?q=SHOP%202").await;
    assert_eq!(r["shops"][0]["id"], app.shops[1], "case does not matter: {r}");
    // LIKE wildcards are plain characters.
    let (_, r) = public(&app, "/v1/search?q=%25").await;
    assert!(r["shops"].as_array().unwrap().is_empty() && r["municipalities"].as_array().unwrap().is_empty(), "{r}");

    // Bad queries are problems naming the field.
    for q in ["", "%20%20", &"a".repeat(65), "a%20b%20c%20d%20e"] {
        let (s, p) = public(&app, &format!("/v1/search?q={q}")).await;
        assert_eq!((s, p["field"].as_str()), (400, Some("q")), "{q}: {p}");
    }
    let (s, _) = public(&app, "/v1/search").await;
    assert_eq!(s, 400);
}
