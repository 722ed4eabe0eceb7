//! The shutdown signal: one [`Shutdown`] per long-lived task, all fed by one [`ShutdownTrigger`].
//!
//! Tasks select on [`Shutdown::recv`] next to their work; the trigger fires once, when stdin closes or a
//! signal arrives, and every clone sees it even if it subscribed late (a `watch` channel keeps the value).

use tokio::sync::watch;

/// The sending side, held by `server::run`.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

/// The receiving side, cloned into every task.
#[derive(Debug, Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// A connected trigger/listener pair.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger { sender }, Shutdown { receiver })
}

impl ShutdownTrigger {
    /// Tells every listener to stop.
    pub fn fire(&self) {
        // `send_replace` succeeds even with no receiver left, which is fine: nobody needs telling then.
        self.sender.send_replace(true);
    }
}

impl Shutdown {
    /// True once shutdown has been requested.
    pub fn is_shutdown(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Waits until shutdown is requested.
    pub async fn recv(&mut self) {
        // An error means the trigger was dropped, which only happens when the server is gone: stop too.
        let _ = self.receiver.wait_for(|stop| *stop).await;
    }
}
