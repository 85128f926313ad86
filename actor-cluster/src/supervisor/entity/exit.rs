//! Why an entity's incarnation failed, read from the registration of the next one.

use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{Entity, EntityRef, Target, EXIT_GRACE};
use crate::registry::RegistryEvent;

impl<E: Entity> EntityRef<E> {
    /// Why the incarnation `t` failed, from the registration of the next one on its node
    /// (waiting a moment for it).
    pub(super) async fn exit_reason(
        &self,
        events: &mut broadcast::Receiver<RegistryEvent>,
        t: &Target<E>,
        deadline: Instant,
    ) -> Option<String> {
        let read = |meta: &[u8]| {
            meta.strip_prefix(super::super::EXIT_MAGIC)
                .map(|r| String::from_utf8_lossy(r).into_owned())
        };
        if let Some(e) = self.sup.registry().entry(&self.id) {
            if e.owner == t.owner && e.cell.as_ref().map(|c| c.get_id()) != Some(t.actor.get_id()) {
                if let Some(r) = read(&e.meta) {
                    return Some(r);
                }
            }
        }
        // The restart registers the next incarnation after the failure; on a loaded machine
        // that can take a while.
        let grace = deadline.min(Instant::now() + EXIT_GRACE);
        let wait = async {
            loop {
                match events.recv().await {
                    Ok(RegistryEvent::Registered { name, owner, meta })
                        if name == self.id && owner == t.owner =>
                    {
                        return read(&meta)
                    }
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
        };
        tokio::time::timeout_at(grace, wait).await.ok().flatten()
    }
}
