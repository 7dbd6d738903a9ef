;;; spark-ls.el --- spark-ls AI code actions through eglot  -*- lexical-binding: t; -*-

;; Works with the eglot built into Emacs 29+ and with eglot 1.9+ from ELPA on Emacs 28
;; (Debian 12: apt install elpa-eglot).
;;
;;   (add-to-list 'load-path "/path/to/spark-ls/editors/emacs")
;;   (require 'spark-ls)
;;   (setq spark-ls-initialization-options '(:model "gpt-5.3-codex-spark"))
;;   (add-hook 'python-mode-hook #'eglot-ensure)
;;
;; Then `M-x eglot-code-actions' (or `eglot-code-action-quickfix' / `eglot-code-action-rewrite')
;; lists spark-ls's fixes and refactors; `M-x spark-ls-edit' rewrites the region (or the function
;; at point) following an instruction.

;;; Code:

(require 'cl-lib)
(require 'seq)
(require 'eglot)

(defgroup spark-ls nil
  "AI code actions from the spark-ls language server."
  :group 'eglot
  :prefix "spark-ls-")

(defcustom spark-ls-command '("spark-ls" "serve")
  "Command line that starts the spark-ls language server (stdio)."
  :type '(repeat string))

(defcustom spark-ls-initialization-options nil
  "Plist sent as LSP initializationOptions.
Keys are spark-ls setting names, for example
  (:model \"gpt-5.3-codex-spark\" :fallback_models [\"gpt-5-mini\"]
   :pin t :base_url \"https://api.openai.com/v1\" :context_budget 2000
   :prefetch t)
Use :json-false for false and vectors for lists.  The API key is read
from the OPENAI_API_KEY environment variable of the Emacs process."
  :type 'plist)

(defcustom spark-ls-major-modes
  '(python-mode python-ts-mode
    js-mode js-ts-mode js2-mode typescript-mode typescript-ts-mode tsx-ts-mode
    go-mode go-ts-mode rust-mode rust-ts-mode java-mode java-ts-mode
    c-mode c-ts-mode c++-mode c++-ts-mode)
  "Major modes in which eglot uses spark-ls.
Eglot runs one server per buffer: in these modes spark-ls replaces any
other server from `eglot-server-programs'."
  :type '(repeat symbol))

(defcustom spark-ls-confirm-edits nil
  "Whether eglot asks before applying spark-ls's edits.
spark-ls edits arrive as server-initiated workspace edits (when eglot
cannot resolve code actions, and always for `spark-ls-edit'), which eglot
confirms by default.  nil applies them at once, for spark-ls only; other
servers keep `eglot-confirm-server-initiated-edits' (eglot < 1.16) or
`eglot-confirm-server-edits' (eglot 1.16+)."
  :type 'boolean)

(defconst spark-ls-edit-command "spark.editWithInstruction"
  "The workspace/executeCommand command behind `spark-ls-edit'.")

(defun spark-ls--contact (&optional _interactive)
  "Eglot contact for spark-ls: `spark-ls-command' plus initialization options."
  (append spark-ls-command
          (list :initializationOptions
                (or spark-ls-initialization-options (make-hash-table)))))

;;;###autoload
(defun spark-ls-register ()
  "Make eglot use spark-ls for `spark-ls-major-modes'."
  (setq eglot-server-programs
        (cons (cons spark-ls-major-modes #'spark-ls--contact)
              (cl-remove-if (lambda (entry) (eq (cdr entry) #'spark-ls--contact))
                            eglot-server-programs))))

(defun spark-ls--server-p (server)
  "Non-nil when SERVER is spark-ls (it offers `spark-ls-edit-command')."
  (let ((cmds (plist-get (plist-get (eglot--capabilities server) :executeCommandProvider)
                         :commands)))
    (and cmds (seq-contains-p cmds spark-ls-edit-command))))

(defvar eglot-confirm-server-initiated-edits)  ; eglot < 1.16
(defvar eglot-confirm-server-edits)            ; eglot 1.16+

(defun spark-ls--without-confirmation (fn server &rest args)
  "Run FN on SERVER with ARGS; spark-ls's edits then apply unconfirmed."
  (if (or spark-ls-confirm-edits (not (spark-ls--server-p server)))
      (apply fn server args)
    (let ((eglot-confirm-server-initiated-edits nil)
          (eglot-confirm-server-edits nil))
      (ignore eglot-confirm-server-initiated-edits eglot-confirm-server-edits)
      (apply fn server args))))

(dolist (fn '(eglot-execute-command eglot-execute))
  (when (fboundp fn)
    (advice-add fn :around #'spark-ls--without-confirmation)))

(defun spark-ls--range (beg end)
  "LSP range for BEG..END (an empty range at point when BEG is nil)."
  (if beg
      (list :start (eglot--pos-to-lsp-position beg)
            :end (eglot--pos-to-lsp-position end))
    (let ((pos (eglot--pos-to-lsp-position (point))))
      (list :start pos :end pos))))

;;;###autoload
(defun spark-ls-edit (instruction &optional beg end)
  "Ask spark-ls to rewrite the region BEG..END following INSTRUCTION.
Without an active region, spark-ls edits the function at point.  The
server answers with a workspace edit, which eglot applies."
  (interactive
   (append (list (read-string "Spark edit: "))
           (when (use-region-p) (list (region-beginning) (region-end)))))
  (when (string-empty-p (string-trim instruction))
    (user-error "spark-ls: empty instruction"))
  (let* ((server (eglot--current-server-or-lose))
         (uri (plist-get (eglot--TextDocumentIdentifier) :uri))
         (args (vector uri (spark-ls--range beg end) instruction)))
    (if (fboundp 'eglot-execute)        ; eglot 1.15+
        (eglot-execute server (list :title "spark-ls edit"
                                    :command spark-ls-edit-command
                                    :arguments args))
      (eglot-execute-command server (intern spark-ls-edit-command) args))))

(spark-ls-register)

(provide 'spark-ls)
;;; spark-ls.el ends here
