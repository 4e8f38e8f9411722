#include "common/spawn.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>

extern char** environ;

namespace streamscore {

namespace {

// posix_spawn takes null-terminated arrays of mutable C strings; `words` outlives them.
std::vector<char*> c_strings(std::vector<std::string>& words) {
  std::vector<char*> out;
  for (auto& w : words) out.push_back(w.data());
  out.push_back(nullptr);
  return out;
}

void redirect(posix_spawn_file_actions_t* actions, int fd, const std::string& path) {
  if (!path.empty()) posix_spawn_file_actions_addopen(actions, fd, path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
}

}  // namespace

pid_t spawn_process(const std::vector<std::string>& words, const std::string& out_path, const std::string& err_path,
                    const std::vector<std::string>* environment) {
  if (words.empty()) return -1;
  std::vector<std::string> argv_words = words;
  std::vector<char*> argv = c_strings(argv_words);
  std::vector<std::string> env_words = environment ? *environment : std::vector<std::string>{};
  std::vector<char*> envp = c_strings(env_words);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  redirect(&actions, 1, out_path);
  redirect(&actions, 2, err_path);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environment ? envp.data() : environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

std::string program_beside_this_one(const std::string& name) {
  char path[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return name;
  const std::string self(path, static_cast<std::size_t>(n));
  return self.substr(0, self.rfind('/') + 1) + name;
}

int wait_for_exit(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace streamscore
