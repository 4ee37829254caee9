#include "tests/testing/free_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace keyverifier::testing {
namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

// Runs bind (or connect) on a new socket of `type` to 127.0.0.1:port.
bool TrySocket(int type, int port, bool connect_instead) {
  int fd = socket(AF_INET, type, 0);
  if (fd < 0) return false;
  sockaddr_in sa = Loopback(port);
  auto* addr = reinterpret_cast<sockaddr*>(&sa);
  bool ok = (connect_instead ? connect(fd, addr, sizeof sa) : bind(fd, addr, sizeof sa)) == 0;
  close(fd);
  return ok;
}

bool Bindable(int type, int port) { return TrySocket(type, port, false); }

}  // namespace

bool ListeningOnLoopback(int port) { return TrySocket(SOCK_STREAM, port, true); }

absl::StatusOr<int> FreeLoopbackPort() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return absl::InternalError(std::strerror(errno));
    sockaddr_in sa = Loopback(0);
    socklen_t len = sizeof sa;
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
      close(fd);
      return absl::InternalError(std::strerror(errno));
    }
    int port = ntohs(sa.sin_port);
    close(fd);
    if (Bindable(SOCK_DGRAM, port) && Bindable(SOCK_STREAM, port)) return port;
  }
  return absl::InternalError("no free loopback port");
}

}  // namespace keyverifier::testing
