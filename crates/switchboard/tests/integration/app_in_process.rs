//! The app builder in process: `switchboard::App`, built from `serve` flags with both services
//! on ephemeral loopback ports, answers on both and drains when told to stop.

use serde_json::json;
use switchboard::App;
use switchboard::cli::ServeArgs;

use crate::common::*;

const TOKEN: &str = "app-in-process-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_builds_serves_and_drains_in_process() {
    init();
    let dir = std::env::temp_dir().join(format!(
        "sb-app-{}",
        switchboard_control::identity::random_hex(6)
    ));
    let data = dir.join("data");
    let args = ServeArgs::from_words([
        "--admin-token",
        TOKEN,
        "--main-addr",
        "127.0.0.1:0",
        "--mcp-addr",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ])
    .expect("serve flags");
    let app = App::build(args, Default::default())
        .await
        .expect("the app builds");
    let (main, mcp) = (app.main_addr().unwrap(), app.mcp_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(app.serve(async move {
        let _ = stopped.await;
    }));

    let api = ApiClient::new(format!("http://{main}"));
    api.anon().get("/health").expect(200).await;
    api.anon().get("/api/v1/servers").expect(401).await;
    let list = api.as_(TOKEN).get("/api/v1/servers").expect(200).await;
    assert_eq!(list["servers"], json!([]), "{list}");
    McpClient::connect_authorized(&format!("http://{mcp}/mcp"), TOKEN).await;

    stop.send(()).unwrap();
    served.await.unwrap().expect("serve drains and returns Ok");
    assert!(
        reqwest::get(format!("http://{main}/health")).await.is_err(),
        "the main service stopped listening"
    );
    std::fs::remove_dir_all(&dir).ok();
}
