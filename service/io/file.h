// Reading a whole file: the one reader the service and its tools use, and
// the function type components take so that tests can give them files from
// memory.
#ifndef KEYVERIFIER_SERVICE_IO_FILE_H_
#define KEYVERIFIER_SERVICE_IO_FILE_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace keyverifier::io {

using ReadFile = std::function<absl::StatusOr<std::string>(const std::string& path)>;

// The file's bytes; NotFoundError "cannot open PATH" when it cannot be opened.
absl::StatusOr<std::string> ReadFileFromDisk(const std::string& path);

}  // namespace keyverifier::io

#endif  // KEYVERIFIER_SERVICE_IO_FILE_H_
