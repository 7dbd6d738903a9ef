"""spark-ls: Edit with Instruction, for Sublime Text 4 with the LSP package.

Copy this file and spark-ls.sublime-commands into your Packages/User folder. The command asks
for an instruction and sends workspace/executeCommand "spark.editWithInstruction"
[uri, range of the first selection, instruction] through LSP's `lsp_execute`; spark-ls answers
with a workspace edit that the LSP package applies.
"""

import sublime_plugin

SESSION = "spark-ls"  # the key under "clients" in LSP.sublime-settings


class SparkLsInstructionInputHandler(sublime_plugin.TextInputHandler):
    def name(self):
        return "instruction"

    def placeholder(self):
        return "What should spark-ls do with the selection / this function?"

    def validate(self, text):
        return bool(text.strip())


class SparkLsEditCommand(sublime_plugin.TextCommand):
    def input(self, args):
        if "instruction" not in args:
            return SparkLsInstructionInputHandler()
        return None

    def run(self, edit, instruction):
        # lsp_execute expands Sublime variables in its arguments: keep `$` in the text literal.
        literal = instruction.replace("$", "\\$")
        self.view.run_command(
            "lsp_execute",
            {
                "session_name": SESSION,
                "command_name": "spark.editWithInstruction",
                "command_args": ["${file_uri}", "${range}", literal],
            },
        )
