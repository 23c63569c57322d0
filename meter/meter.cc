// The meter library's anchor: keeps the target non-empty while its parts land.
namespace dormant::meter {
int LibraryVersion() { return 1; }
}  // namespace dormant::meter
