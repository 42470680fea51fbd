//! [`lock`]: how the journal takes its std Mutexes.

/// Takes a std Mutex of the journal's. A panic while holding one leaves plain data
/// behind; keep going.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
