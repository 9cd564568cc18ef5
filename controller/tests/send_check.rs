//! `run` can be handed to `tokio::spawn` (its future is `Send` for every lifetime).
#![allow(clippy::unwrap_used)]

#[tokio::test]
async fn run_future_is_send() {
    fn assert_send<T: Send + 'static>(_: T) {}
    let client = kube::Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap()));
    let _ = client.map(|c| {
        assert_send(cellfed_controller::run(
            c,
            cellfed_controller::Config::default(),
            std::future::pending::<()>(),
        ))
    });
}
